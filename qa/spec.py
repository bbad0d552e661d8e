"""A resolved embedding model's identity: where it is, its name, fingerprint and prompts.

Its own module because both sides need it: :mod:`qa.model` makes it, the engines
(:mod:`qa.embedder` and below) consume it, and neither may import the other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: what to hand to SentenceTransformer, and how to describe it."""

    location: str  # a local folder, or a hub name
    model_id: str  # a human name, stored in index manifests
    fingerprint: str  # changes whenever the weights or tokenizer change
    query_prefix: str
    passage_prefix: str
    is_local: bool
