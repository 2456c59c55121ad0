"""Stage 3: who sent it and may it change data: authentication, tokens, loop rules, bounces, identity."""
