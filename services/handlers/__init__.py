"""The handlers: execute the import worker's commands against each partner's own tools."""
