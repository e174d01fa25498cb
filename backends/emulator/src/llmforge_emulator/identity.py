"""Who is calling: the ``Authorization: Bearer <token>`` header mapped to a principal.

Tokens come from a mapping, a YAML/JSON file (``{token: principal}``), or the env var
``LLMFORGE_EMULATOR_TOKENS`` holding either a file path or ``token=principal`` pairs separated
by commas; tokens made with ``llmforge token create`` work too. Lookup is the server's token
store (:mod:`llmforge.tokens`), so no token can act as a reserved principal. A token that is
not listed is refused, as the real workspace refuses it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from llmforge.errors import ConfigError, LLMForgeError
from llmforge.tokens import TokenStore, parse_pairs
from llmforge_emulator.errors import ApiError

ENV_VAR = "LLMFORGE_EMULATOR_TOKENS"


def _load_file(path: Path) -> dict[str, str]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the tokens file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"tokens file {path} must map each token to a principal name, e.g. 'tok1: alice'")
    return {str(k): v for k, v in data.items()}


def load_tokens(source: Mapping[str, str] | str | os.PathLike | None = None) -> dict[str, str]:
    """Token -> principal from ``source`` or, when ``source`` is None, from ``LLMFORGE_EMULATOR_TOKENS``.

    Returns an empty dict when neither is given; the caller then issues a token itself.
    """
    if source is None:
        source = os.environ.get(ENV_VAR) or None
        if source is None:
            return {}
    if isinstance(source, Mapping):
        return {str(k): str(v) for k, v in source.items()}
    text = os.fspath(source)
    if Path(text).is_file():
        return _load_file(Path(text))
    if "=" in text:
        return parse_pairs(text, ENV_VAR)
    raise ConfigError(f"tokens source '{text}' is neither a file nor 'token=principal' pairs")


def new_token() -> str:
    """A fresh random token in the shape of a Databricks personal access token."""
    return "dapi" + secrets.token_hex(16)


class Identity:
    """Resolves the bearer token of a request to a principal name.

    A service principal authenticates with OAuth M2M (``POST /oidc/v1/token``): its client id is
    the principal's name and its client secret one of that principal's tokens; the access token
    it receives acts as that principal.
    """

    def __init__(self, tokens: Mapping[str, str], path: str | os.PathLike | None = None) -> None:
        if not tokens:
            raise ConfigError("the emulator needs at least one token; pass tokens={'<token>': '<principal>'}")
        # reserved principals (llmforge.catalog.SYSTEM skips every grant and filter) are refused here
        self._store = TokenStore(path, tokens, env=None)

    def _lookup(self, token: str) -> str | None:
        try:
            return self._store.lookup(token)
        except LLMForgeError as exc:  # a corrupt token file, a reserved principal in it
            raise ApiError("TEMPORARILY_UNAVAILABLE", str(exc)) from None

    def principal(self, authorization: str | None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError("UNAUTHENTICATED", "Missing 'Authorization: Bearer <token>' header.")
        principal = self._lookup(token.strip())
        if principal is None:
            raise ApiError("UNAUTHENTICATED", "Invalid access token.")
        return principal

    def service_principal(self, client_id: str, client_secret: str) -> str:
        if not client_id or not client_secret or self._lookup(client_secret) != client_id:
            raise ApiError("UNAUTHENTICATED", "Invalid client id or secret.")
        return client_id

    def mint(self, principal: str) -> str:
        """A new access token acting as ``principal`` (for the life of the emulator)."""
        token = new_token()
        self._store.add(token, principal)
        return token
