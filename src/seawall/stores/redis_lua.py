"""Lua shared by the Redis stores' scripts."""

from __future__ import annotations

# ``opt(v)``: a number, or nil for a missing or empty value; ``now``: ARGV[1] when a
# test injected a clock, else the Redis server's time (one clock for every instance).
CLOCK = """
local function opt(v)
  if v == false or v == nil or v == '' then return nil end
  return tonumber(v)
end
"""
NOW = """
local now = opt(ARGV[1])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""
