"""bluerec: BLUE — readable user profiles written by an LLM and trained with RL to be strong retrieval queries."""

__version__ = "0.1.0"
