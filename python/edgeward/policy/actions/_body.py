"""The body filters of one phase, in the order they must see the bytes.

Several actions of a phase may transform the body as it streams: the
find-replace actions and the `on_event_stream_message` phase work on the
body as text, `compress-response` encodes it. Text filters run in the
order their actions ran, all before the encoder, whichever order the
policy lists them in: a replacement never sees compressed bytes.
"""

from __future__ import annotations

from edgeward.hooks import BodyFilter, Header
from edgeward.policy.context import ActionContext


class BodyPipeline:
    """A `BodyFilter` made of text filters and at most one encoder."""

    __slots__ = ("encoder", "text")

    def __init__(self) -> None:
        self.text: list[BodyFilter] = []
        self.encoder: BodyFilter | None = None

    def feed(self, data: bytes) -> bytes:
        for f in self.text:
            if not data:
                return b""
            data = f.feed(data)
        if self.encoder is not None:
            return self.encoder.feed(data) if data else b""
        return data

    def finish(self) -> bytes:
        tail = b""
        for f in self.text:
            tail = f.feed(tail) + f.finish() if tail else f.finish()
        if self.encoder is not None:
            return (self.encoder.feed(tail) if tail else b"") + self.encoder.finish()
        return tail


def pipeline(ctx: ActionContext) -> BodyPipeline:
    """The phase's pipeline, made on first use."""
    current = ctx.body_filter
    if isinstance(current, BodyPipeline):
        return current
    made = BodyPipeline()
    if current is not None:  # a filter set some other way: keep it first
        made.text.append(current)
    ctx.body_filter = made
    return made


def encoded_here(ctx: ActionContext) -> bool:
    """Whether an action of this phase set the body's encoding (the body
    is text until that encoder runs)."""
    current = ctx.body_filter
    return isinstance(current, BodyPipeline) and current.encoder is not None


def content_encoding(headers: list[Header]) -> str:
    """The body's content coding ('' for none or identity)."""
    for name, value in headers:
        if name == b"content-encoding":
            coding = value.strip().lower()
            if coding and coding != b"identity":
                return coding.decode("latin-1")
    return ""


def weaken_etag(header: Header) -> Header:
    """A strong ETag names exact bytes; a transformed body differs."""
    name, value = header
    if name == b"etag" and not value.startswith(b"W/"):
        return name, b"W/" + value
    return header
