"""One exception family for every failure knexwrap reports.

Each class carries a stable machine-readable ``code`` (used in ``--json`` output) and the
process exit code documented in the README. The CLI catches ``KnexwrapError`` in one place.
"""

from __future__ import annotations


class KnexwrapError(Exception):
    code = "knex_failed"
    exit_code = 1

    def __init__(self, message: str, *, output: str = "") -> None:
        super().__init__(message)
        self.message = message
        # What knex printed, kept for the user when knexwrap could not recognise it.
        self.output = output
        # Structured facts for the JSON error document (e.g. "applied", "reverted": lists of files,
        # "lock_held": bool), beside the message that says the same in words.
        self.facts: dict[str, object] = {}


class KnexFailed(KnexwrapError):
    """knex exited non-zero with output knexwrap does not recognise."""


class ConfigError(KnexwrapError):
    code, exit_code = "config", 3


class PluginNotFound(ConfigError):
    code = "plugin_not_found"


class PluginAmbiguous(ConfigError):
    code = "plugin_ambiguous"


class SettingMissing(ConfigError):
    """No connection is configured for a plugin: a setting (host, user) is missing everywhere.
    Same code as ConfigError: `plugins` and `config` report it per plugin instead of failing."""


class NoPlugins(ConfigError):
    """A whole-install command found no backend plugin in the repository it searched."""

    code = "no_plugins"


class UnsafePluginId(ConfigError):
    """A plugin id (from a package.json) that would leave the folders and names built from it."""

    code = "unsafe_plugin_id"


class ToolMissing(KnexwrapError):
    code, exit_code = "tool_missing", 4


class DriverMissing(ToolMissing):
    code = "driver_missing"


class Unreachable(KnexwrapError):
    code, exit_code = "unreachable", 5


class HostNotFound(Unreachable):
    code = "host_not_found"


class AuthFailed(KnexwrapError):
    code, exit_code = "auth_failed", 6


class DatabaseMissing(KnexwrapError):
    code, exit_code = "database_missing", 7


class WrongFolder(KnexwrapError):
    """The set's table holds rows of another installed set: a folder pointed at the wrong database,
    or two sets sharing one table. Changing it would write one package's files into another's table."""

    code, exit_code = "wrong_folder", 8


class CorruptDirectory(KnexwrapError):
    """The database records migrations whose files are not in the folder: it is ahead of the code."""

    code, exit_code = "corrupt_directory", 8

    def __init__(self, message: str, *, missing: tuple[str, ...] = (), output: str = "") -> None:
        super().__init__(message, output=output)
        self.missing = missing


class Locked(KnexwrapError):
    code, exit_code = "locked", 9


class PendingMigrations(KnexwrapError):
    code, exit_code = "pending", 10


class MigrationNotRun(KnexwrapError):
    code, exit_code = "migration_not_run", 11


class MigrationNotFound(KnexwrapError):
    code, exit_code = "migration_not_found", 11


class AlreadyApplied(KnexwrapError):
    """NAME is applied already (`up NAME`, `up --to NAME`, `mark --applied`): not a typo, so not not_found."""

    code, exit_code = "already_applied", 11


class MigrationFailed(KnexwrapError):
    code, exit_code = "migration_failed", 12


class Timeout(KnexwrapError):
    code, exit_code = "timeout", 13


class Cancelled(KnexwrapError):
    code, exit_code = "cancelled", 14


class BackupFailed(KnexwrapError):
    code, exit_code = "backup_failed", 15


class BackendRunning(KnexwrapError):
    code, exit_code = "backend_running", 16


class DoctorFound(KnexwrapError):
    code, exit_code = "problems_found", 17


class PreviewUnavailable(KnexwrapError):
    """--sql cannot show the plan's SQL here (no scratch database allowed, or a live preview not possible)."""

    code, exit_code = "preview_unavailable", 18


class StateChanged(KnexwrapError):
    """The database is not what the plan was made from (another run changed it between plan and run)."""

    code, exit_code = "state_changed", 19


class Interrupted(KnexwrapError):
    """Ctrl-C (130) or SIGTERM (143) during a change; the message says what the database shows afterwards."""

    code, exit_code = "interrupted", 130

    def __init__(self, message: str, *, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# The README's exit-code table is generated from this list, so keep it the single source.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (1, "knex failed with output knexwrap does not recognise (shown as knex printed it)"),
    (2, "usage error: unknown option or command, missing argument, invalid `--fmt`"),
    (
        3,
        "configuration error: missing variable, unknown or ambiguous plugin, bad value, missing migrations folder, "
        "no backend plugin found (status, doctor, snapshot, plan, downgrade), malformed or hostile app-config/.env "
        "(alias bomb, too deep, `$include` cycle, not UTF-8), an unusable plugin id, a state folder that cannot be "
        "used (read-only, not a folder)",
    ),
    (4, "a tool is missing: node, the project's knex, or the database driver"),
    (
        5,
        "the database server cannot be reached: connection refused, host not found (also `status` when no "
        "database could be read)",
    ),
    (6, "authentication failed, or the database user does not exist"),
    (7, "the plugin's database does not exist (a change needs it; `status` reports it as `absent`)"),
    (
        8,
        'the database is ahead of its migration files (knex: "migration directory is corrupt"), or its table '
        "holds another installed set's rows (`wrong_folder`, or two sets on one table: `conflict`)",
    ),
    (9, "the migration lock is held"),
    (10, "pending migrations or an absent plugin database (`status --check`)"),
    (
        11,
        "no such migration (the closest names are given), or NAME not applied (`down`, `down --to`) or not "
        "pending (`up`, `up --to`)",
    ),
    (12, "a migration failed (the file and the database's message are named, and what was applied before it)"),
    (13, "knexwrap's own timeout expired (what was applied before it is named)"),
    (14, "cancelled: the confirmation was declined or could not be asked"),
    (
        15,
        "the backup before a revert failed, cannot be taken or does not read back (dump tool missing or older "
        "than the server)",
    ),
    (16, "a Backstage backend is connected to a database a downgrade would change (`--force` to go on)"),
    (17, "`doctor` found problems (each listed with its fix)"),
    (
        18,
        "`--sql` cannot preview here: no scratch copy (the role may not create databases, the dump failed), "
        "or `--sql=live` not possible",
    ),
    (19, "the database changed between the plan and the run: nothing was changed (or only the named prefix)"),
    (
        130,
        "interrupted (Ctrl-C). During a change the message says what was applied or reverted, what was stopped, "
        "and the lock",
    ),
    (143, "terminated (SIGTERM); the report says what was applied or reverted"),
)


def exit_code_table() -> str:
    """EXIT_CODES as the README's Markdown table (tests/test_output.py keeps the README equal to it)."""
    return "\n".join(["| code | meaning |", "|---|---|", *(f"| {code} | {text} |" for code, text in EXIT_CODES)])
