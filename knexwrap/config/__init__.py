"""Where each plugin's connection comes from: app-config, .env, POSTGRES_* and flags."""
