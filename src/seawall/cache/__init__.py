"""Response caching: answers to repeated requests, without a call upstream."""
