"""Keep secrets out of the outputs: scrub() masks secret values by their shape."""

from __future__ import annotations

import re

# What scrub() masks (the value becomes ***, the name stays):
USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]*):[^\s/@]*@")  # scheme://user:PASSWORD@
AUTHORIZATION = re.compile(
    r"""(?i)(\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?)"""
    r"""(?:(bearer|basic|token|digest|negotiate)\s+)?[^\s"',;]+"""
)  # the header, to its end
BEARER = re.compile(
    r"\b([Bb]earer|BEARER)\s+(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{6,}"
    r"|\b(Basic)\s+[A-Za-z0-9+/=]{8,}"
)
SECRETISH = re.compile(
    r"""(?i)(["']?\b[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"""
    r"""|credential|private[_-]?key|session)[\w-]*["']?\s*[=:]\s*["']?)[^\s&"',;{}\[\]]+"""
)


def scrub(text: str) -> str:
    """text with secret values masked: URI passwords, Authorization headers, Bearer/Basic
    credentials, and password=, secret=, token=, api_key= ... values (also as URL query
    parameters and JSON keys)."""
    text = USERINFO.sub(lambda m: m.group(1) + ":***@", text)
    text = AUTHORIZATION.sub(lambda m: m.group(1) + (m.group(2) + " " if m.group(2) else "") + "***", text)
    text = BEARER.sub(lambda m: (m.group(1) or m.group(2)) + " ***", text)
    return SECRETISH.sub(lambda m: m.group(1) + "***", text)
