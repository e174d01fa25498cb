"""One error family. Every message says what went wrong and what to do next."""

from __future__ import annotations


class LLMForgeError(Exception):
    """Base class of every error llmforge raises on purpose."""


class ConfigError(LLMForgeError, ValueError):
    """A config file or argument is invalid; the message names the key and the allowed values."""


class PluginError(LLMForgeError):
    """A plugin is missing, duplicated, misspelled or broken."""


class NotFoundError(LLMForgeError, LookupError):
    """A table, index, model or other named object does not exist."""


class AlreadyExistsError(LLMForgeError):
    """Creating something whose name is taken."""


class PermissionDeniedError(LLMForgeError, PermissionError):
    """The principal lacks a privilege; the message names the privilege and the securable."""


class QuotaExceededError(LLMForgeError):
    """A department has used its token quota."""


class DataError(LLMForgeError, ValueError):
    """Input data is malformed: wrong columns, empty table, undecodable file."""


class ModelError(LLMForgeError):
    """A model cannot be loaded or run on this backend."""


class GuardrailError(LLMForgeError):
    """A guardrail blocked a request or an answer."""


class AuthenticationError(LLMForgeError):
    """A caller sent no credentials, or credentials that are not valid."""


class RequestTooLargeError(DataError):
    """A request, message or prompt is over a configured size limit; checked before any work."""
