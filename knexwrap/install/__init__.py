"""The Backstage install on disk: the project folder, its packages and their migration sets."""
