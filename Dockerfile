# One image for every hub process (worker, api, connectors, adapters); the command picks the role.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub hub
COPY streams streams
COPY schemas schemas
COPY connectors connectors
COPY sinks sinks
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/netral netral \
    && mkdir -p /var/lib/netral && chown netral /var/lib/netral
USER netral
ENV NETRAL_HOME=/var/lib/netral
ENTRYPOINT []
