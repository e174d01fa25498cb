"""Per-audience adapters served on one base model, each request routed by its caller.

:class:`Router` asks :func:`llmforge.governance.route` which version of the routed model a
principal is entitled to (from lineage, never from the alias name) and checks it can run
here: a LoRA adapter, trained on the base model this generator serves, whose folder still
exists. :func:`active` switches the shared base model to that adapter (loaded once, kept
beside the others, never merged into the base) or to the bare base for one device batch.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from llmforge.errors import ModelError, NotFoundError


class Router:
    """``user`` → ``(adapter folder or None for the base, model name for the completion)``.

    A principal's route is decided once per generator, like the generator's own ``source``:
    an alias moved later is picked up by a new generator (a server restart)."""

    def __init__(self, forge: Any, name: str, base: str, prefix: str, fallback: str) -> None:
        self.forge, self.name, self.base, self.prefix, self.fallback = forge, name, base, prefix, fallback
        self._routes: dict[str | None, tuple[str | None, str]] = {}
        self._lock = threading.Lock()

    def __call__(self, user: str | None) -> tuple[str | None, str]:
        with self._lock:
            if user not in self._routes:
                self._routes[user] = self._decide(user)
            folder, label = self._routes[user]
        if folder is not None and not (
            self._registered(label) and (Path(folder) / "adapter_config.json").exists()
        ):
            raise NotFoundError(
                f"{label}, the adapter {user!r} is routed to, was deleted (from the registry or its "
                f"folder {folder}); promote another version to its alias (`llmforge models promote "
                f"{self.name} VERSION --alias ...`) and restart the server, or retrain it"
            )
        return folder, label

    def _registered(self, label: str) -> bool:
        """The routed version is still in the registry (one lookup per request)."""
        name, _, version = label.removeprefix("models:/").rpartition("/")
        try:
            self.forge.models.client.get_model_version(name, version)
        except Exception:
            return False
        return True

    def _decide(self, user: str | None) -> tuple[str | None, str]:
        from llmforge.governance import route
        from llmforge_local.models import resolve_model

        tracker = self.forge.models
        r = route(tracker, user, self.name, prefix=self.prefix, fallback=self.fallback)
        if r.uri is None:
            return None, self.base
        resolved = tracker.resolve(r.uri)
        if resolved.adapter is None:
            raise ModelError(
                f"{r.uri} (@{r.alias}) is a full fine-tune, not an adapter, so it cannot share the "
                f"base model; train it with method: lora (or lora_from_full), or serve it alone "
                f"(generator option adapter)"
            )
        home = self.forge.home
        if (
            Path(resolve_model(resolved.base_model, home)).resolve()
            != Path(resolve_model(self.base, home)).resolve()
        ):
            raise ModelError(
                f"{r.uri} (@{r.alias}) was trained on base model {resolved.base_model!r}, but this "
                f"generator serves {self.base!r}; set the generator option model: {resolved.base_model}"
            )
        return str(resolved.adapter), f"models:/{self.name}/{r.version}"


def active(m: Any, folder: str | None) -> AbstractContextManager:
    """Make ``folder``'s adapter (``None``: the bare base) the one ``m.model`` runs; the caller
    holds ``m.lock``. Returns the context to generate in."""
    if folder is None:
        return m.model.disable_adapter() if m.adapters else nullcontext()
    name = m.adapters.get(folder)
    if name is None:
        from peft import PeftModel

        name = f"adapter{len(m.adapters)}"
        if not m.adapters:
            m.model = PeftModel.from_pretrained(m.model, folder, adapter_name=name).eval()
        else:
            m.model.load_adapter(folder, adapter_name=name)
        m.model.to(m.device)
        m.adapters[folder] = name
    m.model.set_adapter(name)
    return nullcontext()
