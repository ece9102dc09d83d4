"""Placeholder until the surface is written."""

from fastapi import APIRouter

from mailgate.api.native.errors import render_error
from mailgate.api.surface import Surface

surface = Surface(name="mailsage", prefix="/mailsage-todo", router=APIRouter(), render_error=render_error)
