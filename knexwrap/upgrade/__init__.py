"""Upgrade days: archive, snapshot, downgrade plans and runs, backups, doctor, and the change verbs."""
