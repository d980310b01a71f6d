FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md alembic.ini ./
COPY liqmap liqmap
COPY engine engine
COPY models models
COPY jobs jobs
COPY api api
COPY alembic alembic
RUN pip install --no-cache-dir -e .
EXPOSE 8000
ENTRYPOINT ["liqmap"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
