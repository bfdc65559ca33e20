#!/usr/bin/env bash
# Register the example specs into a store and show the result.
# The store is $REGMAN_HOME when set (e.g. REGMAN_HOME=$(mktemp -d)), else the default one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

regman import training_pipeline "$here"/training_pipeline/*.step.yaml
regman import inference_pipeline "$here"/inference_pipeline/*.step.yaml
regman import dev "$here"/environments/dev/*.step.yaml
regman import production "$here"/environments/production/*.step.yaml

regman contexts list
regman stats
regman contexts show training_pipeline
if regman resolve --help >/dev/null 2>&1; then
  regman resolve training_pipeline
fi
