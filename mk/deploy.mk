# System tools the deployment tests use (tests/deploy). No Docker engine runs on CI, so the
# compose file is checked with Debian's docker-compose (`docker-compose config`), and the
# Temporal mTLS test makes its certificates with openssl. Installed only when missing, and
# only where apt-get can run as root; elsewhere the tests that need them skip and say why.

DEPLOY_TEST_TOOLS := docker-compose openssl

.PHONY: deploy-deps
test-deps: deploy-deps
deploy-deps:
	@missing=""; \
	for tool in $(DEPLOY_TEST_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing:$$missing"; \
		log=$$(mktemp); \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; } \
			>"$$log" 2>&1 || { cat "$$log"; rm -f "$$log"; exit 1; }; \
		rm -f "$$log"; \
	else \
		echo "not installed:$$missing (Debian packages of the same names); the tests that need them will skip"; \
	fi
