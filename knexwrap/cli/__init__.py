"""The command line: click commands, shared options and the renderers."""
