# Browser tests (tests/dashboard/test_browser.py) drive Debian's Chromium through Playwright;
# `playwright install` cannot download a browser here, so the system package is used.
CHROMIUM := /usr/bin/chromium

.PHONY: browser-deps
browser-deps:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing: chromium (for the dashboard's browser tests)"; \
		log=$$(mktemp); \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
			>"$$log" 2>&1 || { cat "$$log"; rm -f "$$log"; exit 1; }; \
		rm -f "$$log"; \
	else \
		echo "not installed: chromium (Debian package; run as root: apt-get install chromium); browser tests will skip"; \
	fi

test-deps: browser-deps
