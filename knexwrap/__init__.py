"""knexwrap: safe Knex migration commands for Backstage plugin databases."""
