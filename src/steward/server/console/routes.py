"""Console routes (server-rendered)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(prefix="/console", include_in_schema=False)
STATIC = Path(__file__).with_name("static")


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


@router.get("/", response_class=HTMLResponse)
def home() -> str:
    return "<!doctype html><title>steward</title><p>console</p>"
