"""A plain HTTP visitor of the console: signs in through the form, keeps its cookies, posts its forms."""

from __future__ import annotations

import re

import httpx


class Visitor:
    """An HTTP client that keeps the console's cookies itself (they are Secure; the test speaks plain HTTP)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cookies: dict[str, str] = {}
        self.client = httpx.Client(base_url=url, timeout=20, follow_redirects=False)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.client.request(method, path, headers=headers, **kwargs)
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value in ("", '""'):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def sign_in(self, token: str) -> httpx.Response:
        form = self.request("GET", "/console/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        return self.request("POST", "/console/sign-in", data={"csrf": csrf, "token": token, "next": "/console/inbox"})

    def csrf(self, path: str = "/console/inbox") -> str:
        return re.search(r'name="csrf" value="([^"]+)"', self.request("GET", path).text).group(1)
