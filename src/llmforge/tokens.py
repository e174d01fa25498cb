"""Bearer tokens -> principals: one store for the server, the CLI and the emulator.

Tokens created with :meth:`TokenStore.create` (``llmforge token create``) live in
``<home>/api_tokens.json`` as SHA-256 digests only, in a 0600 file rewritten atomically under
an exclusive lock, so concurrent creates never lose one. Fixed tokens come from a mapping or
from ``token=principal`` pairs (``LLMFORGE_API_TOKENS``). No token can act as a reserved
principal (``__system__``, which skips every grant, filter and quota): creating one, listing
one in the environment or finding one in the file is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from llmforge.catalog.identity import check_external
from llmforge.errors import ConfigError, NotFoundError

TOKENS_ENV = "LLMFORGE_API_TOKENS"
TOKENS_FILE = "api_tokens.json"
#: characters of a token's digest shown by ``token list`` and accepted by ``token revoke``
ID_CHARS = 12


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_pairs(text: str, source: str = TOKENS_ENV) -> dict[str, str]:
    """``'tok1=alice,tok2=bob'`` -> ``{'tok1': 'alice', 'tok2': 'bob'}``, principals checked."""
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        token, sep, principal = pair.partition("=")
        if not sep or not token.strip() or not principal.strip():
            raise ConfigError(f"{source}: '{pair}' is not 'token=principal'; write 'tok1=alice,tok2=bob'")
        out[token.strip()] = check_external(principal.strip(), source)
    return out


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    import fcntl

    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class TokenStore:
    """Token lookup over fixed tokens and, when ``path`` is given, the hashed token file."""

    def __init__(
        self,
        path: str | Path | None = None,
        tokens: Mapping[str, str] | None = None,
        env: str | None = TOKENS_ENV,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self._fixed: dict[str, str] = {}
        for token, principal in (tokens or {}).items():
            self.add(token, principal, where="tokens")
        if env:
            for token, principal in parse_pairs(os.environ.get(env, ""), env).items():
                self._fixed[digest(token)] = principal

    @classmethod
    def for_home(cls, home: str | Path, tokens: Mapping[str, str] | None = None) -> TokenStore:
        return cls(Path(home) / TOKENS_FILE, tokens)

    def add(self, token: str, principal: str, where: str = "token") -> None:
        """Accept ``token`` for ``principal`` for the life of this object (not stored)."""
        if not token:
            raise ConfigError(f"{where}: empty token for '{principal}'")
        self._fixed[digest(token)] = check_external(principal, where)

    # -- the file ---------------------------------------------------------------------------
    def _read(self) -> dict[str, dict]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("the top level is not an object")
            out = {}
            for key, entry in raw.items():
                entry = {"principal": entry} if isinstance(entry, str) else entry
                if not isinstance(entry, dict) or not isinstance(entry.get("principal"), str):
                    raise ValueError(f"entry {key[:ID_CHARS]} has no principal")
                out[key] = entry
            return out
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"the token file {self.path} is corrupt ({exc}); restore it from a backup, or delete it "
                "and issue new tokens with `llmforge token create <principal>`"
            ) from None

    def _write(self, entries: dict[str, dict]) -> None:
        from llmforge.fsutil import write_atomic

        assert self.path is not None
        write_atomic(self.path, json.dumps(entries, indent=1), mode=0o600)  # readable by the owner only

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, dict]]:
        if self.path is None:
            raise ConfigError("this token store has no file; open it with TokenStore.for_home(home)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path.with_name(f".{self.path.name}.lock")):
            entries = self._read()
            yield entries
            self._write(entries)

    def create(self, principal: str) -> str:
        """A new token for ``principal``; only its digest is stored, so show it once."""
        check_external(principal, "token create")
        token = "lf-" + secrets.token_urlsafe(32)
        with self._editing() as entries:
            entries[digest(token)] = {"principal": principal, "created": round(time.time(), 6)}
        return token

    def list(self) -> list[dict]:
        """The stored tokens: ``{id, principal, created}`` (never the token itself)."""
        return [
            {"id": key[:ID_CHARS], "principal": e["principal"], "created": e.get("created")}
            for key, e in sorted(self._read().items(), key=lambda kv: (kv[1].get("created") or 0, kv[0]))
        ]

    def revoke(self, token_or_id: str) -> dict:
        """Remove a stored token, named by itself or by its id from :meth:`list`."""
        with self._editing() as entries:
            key = digest(token_or_id) if digest(token_or_id) in entries else None
            if key is None and len(token_or_id) >= 8:
                matches = [k for k in entries if k.startswith(token_or_id)]
                if len(matches) > 1:
                    raise ConfigError(f"token id '{token_or_id}' is ambiguous; give more characters")
                key = matches[0] if matches else None
            if key is None:
                raise NotFoundError(
                    f"no stored token matches '{token_or_id}'; see `llmforge token list` for the ids"
                )
            entry = entries.pop(key)
        return {"id": key[:ID_CHARS], "principal": entry["principal"]}

    def lookup(self, token: str) -> str | None:
        """The principal a token acts as, or ``None`` for an unknown token."""
        key = digest(token)
        if key in self._fixed:
            return self._fixed[key]
        entry = self._read().get(key)  # read per lookup: tokens created while serving work at once
        if entry is None:
            return None
        return check_external(entry["principal"], str(self.path))
