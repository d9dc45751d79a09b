# Image for compose.yaml: the app, its CLI and the RQ worker in one image.
FROM python:3.11-slim
WORKDIR /app
# pg_dump/pg_restore for `contact-center backup|restore` against PostgreSQL 15
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY contact_center contact_center
COPY channels channels
COPY routing routing
COPY tickets tickets
COPY agent_console agent_console
COPY sla sla
COPY bench bench
RUN pip install --no-cache-dir . && useradd --system --home /data desk && mkdir -p /data && chown desk /data
USER desk
EXPOSE 8080
CMD ["contact-center", "serve"]
