"""The project's exceptions. Each also inherits the built-in it is a kind of
(as aiohttp's do), so ``except ValueError`` or ``except OSError`` written for
the standard library keeps working, and ``except QosmonError`` catches every
refusal qosmon raises on purpose.

    QosmonError
    ├── ConfigError (ValueError)        config, scenario file or command-line value
    │   ├── StoreURLError               a store URL that cannot be used
    │   ├── ZoneError                   a region's time zone (qosmon.regions)
    │   └── LanguageError               a language qosmon does not write (qosmon.i18n)
    ├── InputError (ValueError)         a data file given to a command
    ├── UnknownShowError (LookupError)  no show with that id in the store
    ├── StoreError (OSError)            a store backend failed
    │   └── NoSuchStore (FileNotFoundError)  a read found no store where named
    ├── BatchConflictError              a probe batch id reused with other content
    ├── DeliveryError                   a notification was not accepted
    └── JoinError                       a probe's signalling failed

Messages are for the user: they name the file, key, URL or field at fault and
never carry a secret.
"""

from __future__ import annotations


class QosmonError(Exception):
    """Base of every exception qosmon raises on purpose."""


class ConfigError(QosmonError, ValueError):
    """A config or scenario file, or a command-line value, is missing,
    unreadable or invalid."""


class StoreURLError(ConfigError):
    """A store URL that cannot be used; the message says what is wrong."""


class InputError(QosmonError, ValueError):
    """A data file given to a command cannot be read or is malformed; the
    message names the line and column."""


class UnknownShowError(QosmonError, LookupError):
    """The store holds no show with this id."""

    def __init__(self, show_id: str) -> None:
        super().__init__(f"no show with id {show_id!r} in the store")
        self.show_id = show_id


class StoreError(QosmonError, OSError):
    """A backend failed; the data passed in was not (fully) stored."""


class NoSuchStore(StoreError, FileNotFoundError):
    """A store opened for reading does not exist (and was not created)."""


class BatchConflictError(QosmonError):
    """A probe batch id that was stored before with other content: not a
    retry but a new batch under a reused id. Nothing was stored. Not a
    ``StoreError``: the store works, retrying cannot help."""


class DeliveryError(QosmonError):
    """A notification was not accepted. ``retryable``: a later try may work."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class JoinError(QosmonError):
    """Signalling failed; the message is the reason reported in samples."""
