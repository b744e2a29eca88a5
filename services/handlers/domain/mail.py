"""A message to send (the welcome email), as the mail adapter takes it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mail:
    message_id: str  # "<...@...>", derived from the command id: a redelivery is recognisable
    from_address: str
    to: str
    subject: str
    text: str
    html: str
