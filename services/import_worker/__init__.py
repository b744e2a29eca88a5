"""The import worker: turns discovered accounts into commands, as policies say."""
