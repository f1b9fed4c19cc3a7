"""Hydra override strings (`key=value`): the key an override sets, and values quoted in Hydra's
override grammar so that any path (quotes, backslashes, `${`, commas) is passed as it is."""
from __future__ import annotations

import re


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _escape_interpolation(text: str) -> str:
    # OmegaConf resolves ${...} in every string, quoted or not: \${ keeps it literal, and the
    # backslashes just before it are doubled (OmegaConf reads \\${ as one \ plus a live ${)
    return re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", text)


def omegaconf_literal(text: str) -> str:
    """`text` as a value to assign in a config that OmegaConf reads back as the same string."""
    return _escape_interpolation(text)


def hydra_quote(text: str) -> str:
    """`text` as one single-quoted value of Hydra's override grammar (OverrideLexer.g4's
    QUOTED_VALUE): a quote inside is written \\', and the backslashes just before a quote or
    before the closing quote are doubled; any other character stands for itself."""
    body = re.sub(r"(\\*)('|\Z)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""),
                  _escape_interpolation(text))
    return f"'{body}'"


def hydra_value(text: str) -> str:
    """`text` as it can stand in an override: as it is where Hydra reads it unchanged (a plain
    path), else quoted (hydra_quote)."""
    return text if re.fullmatch(r"[\w./@~+-]+", text) else hydra_quote(text)


def hydra_unquote(value: str) -> str:
    """The inverse of `hydra_quote` (also for double quotes); other values come back as given."""
    if len(value) < 2 or value[0] not in "'\"" or value[-1] != value[0]:
        return value
    quote, body = value[0], value[1:-1]
    body = re.sub(rf"(\\+)({quote}|\Z)", lambda m: "\\" * (len(m.group(1)) // 2) + m.group(2),
                  body)
    return re.sub(r"(\\*)\\\$\{", lambda m: "\\" * (len(m.group(1)) // 2) + "${", body)
