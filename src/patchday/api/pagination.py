"""Page pagination for every API list: ?page=N&page_size=M -> {"items": [...], "count": total}."""

from ninja.pagination import PageNumberPagination

Pagination = PageNumberPagination
