"""Running Node and the real Knex CLI, and reading what they print."""
