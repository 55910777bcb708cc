"""DUIS front door: request XML in, DSP responses and user messages out.

``parse_request`` turns a DUIS request into a Service Request record; ``render_dsp_response``
and ``UserMessageRenderer`` turn the DSP's records back into DUIS XML. See docs/duis.md.
"""

from .errors import DuisError
from .eui import format_eui64, parse_eui64
from .requests import parse_request, parse_request_root
from .responses import REJECTION_LISTS, WARNING_BODIES, render_dsp_response
from .user_messages import UserMessageRenderer, user_message_to_json
from .xmlsafe import DEFAULT_MAX_DOCUMENT

__all__ = [
    "DEFAULT_MAX_DOCUMENT",
    "DuisError",
    "REJECTION_LISTS",
    "UserMessageRenderer",
    "WARNING_BODIES",
    "format_eui64",
    "parse_eui64",
    "parse_request",
    "parse_request_root",
    "render_dsp_response",
    "user_message_to_json",
]
