# Infrastructure as code: template.yaml (AWS SAM). Every check here is offline: no AWS credentials, no AWS call.
#
#   make iac-venv     create .venv-iac (aws-sam-cli, cfn-lint) and .venv-checkov (checkov)
#   make iac-check    sam validate --lint, cfn-lint (SAM template and its translation), checkov (SAM template and its CloudFormation translation),
#                     sam build (function + layer, no Docker)
#
# Two venvs because aws-sam-cli and checkov pin different exact boto3 versions, and neither goes in .venv.
# Each venv gets a '*' .gitignore, so git and ruff (which honours .gitignore) leave it alone.
# The template/schema and QuickSight-model tests are ordinary pytest tests (tests/test_template.py).

PY ?= .venv/bin/python
IAC_BASE_PYTHON ?= python3
IAC_VENV ?= .venv-iac
CHECKOV_VENV ?= .venv-checkov
IAC_TEMPLATE ?= template.yaml
IAC_OUT ?= build/iac
SAM_BUILD_DIR ?= .aws-sam/build
# The functions' code directories (each holds app.py): sam build silently skips a CodeUri that does not exist.
IAC_CODE_DIRS = $(shell sed -n 's/^ *CodeUri: *//p' $(IAC_TEMPLATE))

# sam build checks that the function's runtime (python3.13) is on PATH: PYTHON313 (found by the top-level
# Makefile) goes first on PATH for it.

# Keep SAM CLI offline and out of ~/.aws-sam: no telemetry, a region so nothing asks for one, no instance-metadata
# probing for credentials, and a private config dir whose recorded "last version check" lies in the future, so
# SAM CLI does not ask PyPI for a newer release after each command.
IAC_ENV = SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
  __SAM_CLI_APP_DIR=$(abspath $(IAC_OUT))/sam-cli-home
SAM = $(IAC_ENV) $(IAC_VENV)/bin/sam
CHECKOV = $(CHECKOV_VENV)/bin/checkov --framework cloudformation --compact --quiet --skip-download

CHECK_TARGETS += iac-check

.PHONY: iac-venv iac-check iac-lint iac-checkov iac-build iac-clean

$(IAC_VENV)/.installed: requirements-iac.txt constraints-iac.txt
	$(IAC_BASE_PYTHON) -m venv $(IAC_VENV)
	echo '*' > $(IAC_VENV)/.gitignore
	$(IAC_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(IAC_VENV)/bin/python -m pip install --quiet -c constraints-iac.txt -r requirements-iac.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt constraints-checkov.txt
	$(IAC_BASE_PYTHON) -m venv $(CHECKOV_VENV)
	echo '*' > $(CHECKOV_VENV)/.gitignore
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -c constraints-checkov.txt -r requirements-checkov.txt
	touch $@

# `make constraints` (top-level Makefile) re-resolves these two as well.
CONSTRAINT_TARGETS += iac-constraints
.PHONY: iac-constraints
iac-constraints:
	scripts/freeze_constraints.sh $(IAC_BASE_PYTHON) constraints-iac.txt -r requirements-iac.txt
	scripts/freeze_constraints.sh $(IAC_BASE_PYTHON) constraints-checkov.txt -r requirements-checkov.txt

iac-venv: $(IAC_VENV)/.installed $(CHECKOV_VENV)/.installed

$(IAC_OUT)/sam-cli-home/metadata.json:
	mkdir -p $(dir $@)
	echo '{"telemetryEnabled": false, "lastVersionCheck": 4102444800.0}' > $@

# cfn-lint runs twice: on the SAM template, and on its full offline translation to CloudFormation (Globals merged
# into each function, events expanded), which is what CloudFormation receives: a property that SAM merges into an
# invalid value (Architectures [arm64, arm64]) only shows there.
# A third run checks the SAM template in the Regions where QuickSight's resource types do not exist (cfn-lint
# E3006 there unless the QuickSightEnabled condition leaves them out; the QuickSightRegion rule refuses them early).
IAC_REGIONS ?= us-east-1 ap-east-1 ap-east-2 ap-northeast-3 ap-south-2 ap-southeast-4 ap-southeast-6 \
  ap-southeast-7 ca-west-1 cn-northwest-1 il-central-1 me-central-1 mx-central-1 us-west-1
iac-lint: $(IAC_OUT)/template.cfn.json $(IAC_OUT)/sam-cli-home/metadata.json
	$(SAM) validate --lint --template-file $(IAC_TEMPLATE)
	$(IAC_ENV) $(IAC_VENV)/bin/cfn-lint $(IAC_TEMPLATE)
	$(IAC_ENV) $(IAC_VENV)/bin/cfn-lint $(IAC_OUT)/template.cfn.json
	$(IAC_ENV) $(IAC_VENV)/bin/cfn-lint --regions $(IAC_REGIONS) -- $(IAC_TEMPLATE)

.PHONY: $(IAC_OUT)/template.cfn.json
$(IAC_OUT)/template.cfn.json: $(IAC_VENV)/.installed
	mkdir -p $(IAC_OUT)
	$(IAC_ENV) $(IAC_VENV)/bin/python mk/sam_translate.py $(IAC_TEMPLATE) $@

# checkov reads the SAM template directly (AWS::Serverless::* checks) and, translated offline to plain
# CloudFormation, the IAM role, permission and event invoke config that SAM generates. Any failed check fails the
# target; justified exceptions are `Metadata: checkov: skip:` entries on the resources in template.yaml.
iac-checkov: $(IAC_OUT)/template.cfn.json $(CHECKOV_VENV)/.installed
	$(CHECKOV) -f $(IAC_TEMPLATE)
	$(CHECKOV) -f $(IAC_OUT)/template.cfn.json

# Builds the function (python3.13, arm64, pure Python, no Docker) and the layer (BuildMethod: makefile, target
# build-AlbLakeLayer in layers/alblake/Makefile).
iac-build: $(IAC_VENV)/.installed $(IAC_OUT)/sam-cli-home/metadata.json
	@for dir in $(IAC_CODE_DIRS); do test -f "$$dir/app.py" || { \
	  echo "iac-build: $${dir}app.py is missing (a CodeUri of $(IAC_TEMPLATE); sam build would skip it)" >&2; exit 1; }; done
	@test -f layers/alblake/Makefile || { echo "iac-build: layers/alblake/Makefile is missing" >&2; exit 1; }
	@test -n "$(PYTHON313)" || { echo "iac-build: no working python3.13 found (set PYTHON313=...)" >&2; exit 1; }
	rm -rf $(SAM_BUILD_DIR)
	PATH="$(dir $(PYTHON313)):$$PATH" $(SAM) build --template-file $(IAC_TEMPLATE) --build-dir $(SAM_BUILD_DIR) \
	  --no-cached --no-use-container
	@du -sh $(SAM_BUILD_DIR)/* | sed 's/^/iac-build: /'

iac-check: iac-lint iac-checkov iac-build

iac-clean:
	rm -rf $(IAC_OUT) .aws-sam
