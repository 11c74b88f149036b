"""Optional LLM judge through an OpenAI-compatible chat endpoint (off by default).

VLMEvalKit asks a judge model to map answers its exact-matching rules cannot read. Scores with a
judge depend on that model, so they are not comparable with exact-matching scores; the judge is
used only when ``--judge-url`` is given, and never in tests. Only the standard library is used.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass

from mobile_mllm.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["OpenAIJudge"]


@dataclass(frozen=True)
class OpenAIJudge:
    """A chat-completions endpoint (``{url}/chat/completions``) used as a matching judge."""

    url: str
    """Base URL, e.g. ``http://localhost:8000/v1``."""
    model: str = "gpt-4o-mini"
    """Model name sent with each request."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key (may be unset for local servers)."""
    timeout_s: float = 60.0
    """Seconds to wait for one reply."""

    def generate(self, prompt: str) -> str:
        """The judge's reply to ``prompt`` (temperature 0).

        Raises:
            ConfigError: the endpoint is unreachable or answers with an error or malformed JSON.
        """
        body = json.dumps(
            {"model": self.model, "messages": [{"role": "user", "content": prompt}], "temperature": 0}
        ).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        endpoint = self.url.rstrip("/") + "/chat/completions"
        request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 (user-given URL)
                payload = json.loads(response.read().decode())
            return str(payload["choices"][0]["message"]["content"])
        except urllib.error.HTTPError as e:
            raise ConfigError(f"judge endpoint {endpoint} answered HTTP {e.code}; check --judge-url, --judge-model and ${self.api_key_env}") from e
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise ConfigError(f"judge endpoint {endpoint} is unreachable ({e}); start the server or drop --judge-url to use exact matching") from e
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise ConfigError(f"judge endpoint {endpoint} returned no chat completion ({e}); is it OpenAI-compatible?") from e
