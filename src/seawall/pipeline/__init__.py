"""The request pipeline: ordered stages from authentication to execution."""
