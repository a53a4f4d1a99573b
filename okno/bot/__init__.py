"""The bot: the knowledge base, question suggestions while typing, answer or hand off."""
