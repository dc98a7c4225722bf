# Lambda: layer build/size/import check and a local invoke against moto_server.
# Included by the top-level Makefile (`include mk/*.mk`), which defines PY and VENV.

PY ?= .venv/bin/python
EVENT ?= events/s3-put.json
LAYER_ARCH ?= aarch64
LAYER_OUT ?= build/layer/arm64

.PHONY: layer layer-size layer-importcheck local-invoke local-env

## layer: build the Lambda layer for arm64 into build/layer/arm64/python (what `sam build` does)
layer:
	$(MAKE) -s -C layers/alblake build-AlbLakeLayer ARTIFACTS_DIR=$(abspath $(LAYER_OUT)) ARCH=$(LAYER_ARCH) \
	  PYTHON_RUNTIME=$(PYTHON313)

## layer-size: unzipped size of the layer (+ function code); Lambda's limit is 250 MB unzipped in total
layer-size: layer
	@du -sh $(LAYER_OUT)/python functions/ingest
	@du -sk $(LAYER_OUT)/python functions/ingest | awk '{s+=$$1} END {printf "total unzipped: %.1f MB (limit 250 MB)\n", s/1024}'
	@du -sh $(LAYER_OUT)/python/* | sort -h | tail -6

## layer-importcheck: x86_64 build of the same trimmed layer, imported and exercised with python3.13
layer-importcheck:
	@test -n "$(PYTHON313)" || { echo "python3.13 not found (set PYTHON313=/path/to/python3.13)"; exit 1; }
	$(MAKE) -s -C layers/alblake build-AlbLakeLayer ARTIFACTS_DIR=$(abspath build/layer/x86_64) ARCH=x86_64 \
	  PYTHON_RUNTIME=$(PYTHON313)
	@test -d build/layer/runtime-x86_64/boto3 || $(PYTHON313) -m pip install -q --disable-pip-version-check \
		--target build/layer/runtime-x86_64 -c $(CONSTRAINTS) boto3 2>&1 | grep -v -e WARNING -e '^$$' || true
	$(PYTHON313) layers/alblake/importcheck.py $(abspath build/layer/x86_64/python) $(abspath build/layer/runtime-x86_64)

## local-invoke: what `sam local invoke -e $(EVENT)` would do, against moto_server on 127.0.0.1
local-invoke:
	$(PY) scripts/local_invoke.py $(EVENT)

## local-env STACK=NAME: the --env-vars JSON of `sam local invoke` for a deployed stack (reads its outputs with
## CloudFormation DescribeStacks: needs AWS credentials; REGION=... if not the configured one)
LOCAL_ENV_OUT ?= build/local-env/$(STACK).json
local-env: venv
	@test -n "$(STACK)" || { echo "usage: make local-env STACK=<deployed stack name> [REGION=...]" >&2; exit 2; }
	$(PY) scripts/local_env.py $(STACK) --out $(LOCAL_ENV_OUT) $(if $(REGION),--region $(REGION))

# ~50 s from a clean tree (pip cache warm: ~25 s); needs PyPI (as CI has) and python3.13 (PYTHON313).
CHECK_TARGETS += layer-importcheck
