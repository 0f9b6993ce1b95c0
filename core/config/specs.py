"""Every setting, in one order (the one the command-line flags and the settings table follow): :data:`SPECS`,
and :data:`SPEC_BY_NAME`, from the declarations of :mod:`core.config.specs_proxy`, :mod:`core.config.specs_cache`,
:mod:`core.config.specs_ollama`, :mod:`core.config.specs_ollama_server` and :mod:`core.config.specs_tuning`
(what a declaration holds is :class:`core.config.spec.Spec`). :mod:`core.config.table` turns them into the control
API's settings table, :mod:`core.config.settings` resolves them from their sources.

:class:`SettingError` is the one error for a setting that cannot apply: its message names the setting,
where the value came from and what is accepted (for an unknown name: the known names of its section).
"""

from __future__ import annotations

from core.config.spec import Spec
from core.config.specs_cache import CACHE_SPECS
from core.config.specs_ollama import OLLAMA_SPECS
from core.config.specs_ollama_server import SERVER_SPECS
from core.config.specs_proxy import PROXY_SPECS
from core.config.specs_tuning import TUNING_SPECS

SPECS: tuple[Spec, ...] = (*PROXY_SPECS, *CACHE_SPECS, *OLLAMA_SPECS, *SERVER_SPECS, *TUNING_SPECS)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}


class SettingError(ValueError):
    """A setting that cannot apply: a value outside what it accepts, or a name that is no setting.

    ``name`` is the setting's full name (``cache.ttl``); the message says where it came from and what
    would be accepted.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name

    @classmethod
    def invalid(cls, name: str, value: object, source: str, accepted: str) -> SettingError:
        return cls(name, f"invalid value {value!r} for setting {name} (from {source}); accepted: {accepted}")

    @classmethod
    def unknown(cls, name: str, source: str) -> SettingError:
        """A name in the file that is no setting: the known keys of its section, or the known sections."""
        section, dot, _ = name.partition(".")
        known: dict[str, list[str]] = {}
        for spec in SPECS:
            head, _, key = spec.name.partition(".")
            known.setdefault(head, []).append(key)
        sections = ", ".join(f"[{known_section}]" for known_section in known)
        if not dot:
            return cls(name, f"unknown setting {name} (settings go in a section: {sections}) in {source}")
        if section not in known:
            return cls(name, f"unknown section [{section}] of setting {name} (known sections: {sections}) in {source}")
        return cls(name, f"unknown setting {name} (known in [{section}]: {', '.join(known[section])}) in {source}")
