# Thin aliases for cargo xtask; no logic lives here.
.PHONY: ci test tidy demo fmt

ci test:
	cargo xtask ci

tidy:
	cargo xtask tidy

demo:
	cargo run --release -p flightdeck-cli -- demo

fmt:
	cargo fmt --all
