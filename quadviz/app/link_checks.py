"""Checks of a link's query string beyond the values of single fields.

:func:`quadviz.config.config_from_mapping` validates each Config value. This
module adds what needs the whole query string: keys given more than once
(Streamlit's ``st.query_params[key]`` returns the last value, and the app
uses that value too), and keys that no part of the app reads. It also makes
raw link text safe to show: Streamlit renders alert text as Markdown, so a
value such as ``![x](http://host/y.png)`` would otherwise load an image from
another host in the visitor's browser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from quadviz.config import FIELDS

# Raw link text longer than this is cut in messages.
MAX_SHOWN_CHARS = 40
# Unknown keys named in one message; the rest are counted.
MAX_LISTED_KEYS = 5
# Query parameters that Streamlit itself reads (Streamlit 1.67).
STREAMLIT_LINK_KEYS = frozenset({"embed", "embed_options"})

# Keys of other features: the scenario gallery (quadviz.app.gallery) and
# lecture mode (quadviz.app.lecture). Features added later call
# register_link_keys.
FEATURE_LINK_KEYS = frozenset({"scenario", "lecture"})
# Characters that start Markdown, HTML, an entity, LaTeX ($) or Streamlit's
# ":red[...]" and ":icon:" directives. "-", "+" and "." matter only at the
# start of a line, where a link value never appears.
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#!|~<>$:&")

_registered_keys: set[str] = set()


def register_link_keys(*names: str) -> None:
    """Declare query keys that a page or feature reads besides Config fields,
    so that links carrying them raise no "unknown parameter" warning."""
    _registered_keys.update(names)


def known_link_keys() -> frozenset[str]:
    """Config fields, registered keys and Streamlit's own keys."""
    return (
        frozenset(FIELDS)
        | FEATURE_LINK_KEYS
        | frozenset(_registered_keys)
        | STREAMLIT_LINK_KEYS
    )


def escape_markdown(text: str) -> str:
    """Backslash-escape the characters that Markdown, HTML, LaTeX and
    Streamlit's directives act on, so ``text`` shows as typed."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in text)


def show_raw(value: object) -> str:
    """Raw link value for a message: cut to MAX_SHOWN_CHARS, empty marked,
    Markdown escaped."""
    text = str(value)
    if text.strip() == "":
        return "(empty)"
    if len(text) > MAX_SHOWN_CHARS:
        text = text[:MAX_SHOWN_CHARS] + "…"
    return escape_markdown(text)


def link_messages(
    keys: Iterable[str], get_all: Callable[[str], list[str]]
) -> list[str]:
    """Warnings about repeated and unknown keys of a query string.

    ``keys`` are the distinct keys in the query string and ``get_all(key)``
    returns every value given for a key, in order (``st.query_params`` has
    both). Values of unknown keys are ignored; repeated keys keep their last
    value.
    """
    messages = []
    known = known_link_keys()
    unknown = []
    for key in keys:
        if key not in known:
            unknown.append(key)
            continue
        values = get_all(key)
        if len(values) > 1:
            shown = ", ".join(show_raw(v) for v in values[:MAX_LISTED_KEYS])
            more = "" if len(values) <= MAX_LISTED_KEYS else ", …"
            messages.append(
                f"The link gives {escape_markdown(key)} {len(values)} times "
                f"({shown}{more}); using the last value, {show_raw(values[-1])}"
            )
    if unknown:
        listed = ", ".join(show_raw(key) for key in unknown[:MAX_LISTED_KEYS])
        extra = len(unknown) - MAX_LISTED_KEYS
        more = f" and {extra} more" if extra > 0 else ""
        noun = "parameter" if len(unknown) == 1 else "parameters"
        messages.append(
            f"Ignored unknown link {noun} {listed}{more}; known parameters "
            "are " + ", ".join(sorted(known - STREAMLIT_LINK_KEYS))
        )
    return messages
