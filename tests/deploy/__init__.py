"""Deployment files validated offline (``make validate-deploy``; marker ``deploy``)."""
