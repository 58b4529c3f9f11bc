"""Real model providers, through their official SDKs: OpenAI-compatible and Anthropic."""
