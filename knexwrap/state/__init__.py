"""What the databases hold: read-only reads of migration sets, per plugin and for the whole install."""
