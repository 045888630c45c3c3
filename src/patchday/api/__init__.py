"""The REST API under /api/v1: one NinjaAPI, its error shape, its guards and pagination."""
