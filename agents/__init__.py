"""Agents that play the glimpse envs: the built-in RAM (REINFORCE) and SB3 glue."""
