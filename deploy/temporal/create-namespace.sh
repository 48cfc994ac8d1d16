#!/bin/sh
# Registers the namespace the app uses (a SQL-backed server starts with none), once.
# The retention only applies to closed workflows; the audit log keeps the lasting record.
set -eu

ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_RETENTION:-30d}"

attempt=0
until temporal operator cluster health --address "$ADDRESS" >/dev/null 2>&1; do
    attempt=$((attempt + 1))
    if [ "$attempt" -ge 60 ]; then
        echo "Temporal at $ADDRESS is not healthy after 120 s" >&2
        exit 1
    fi
    sleep 2
done

if temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; then
    echo "namespace $NAMESPACE exists"
else
    temporal operator namespace create --address "$ADDRESS" --namespace "$NAMESPACE" --retention "$RETENTION"
    echo "namespace $NAMESPACE created (retention $RETENTION)"
fi
