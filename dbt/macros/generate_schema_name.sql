{#- Models with a custom schema (staging, marts) go to that schema as named, not "<target>_<custom>",
    so the warehouse has stable `staging` and `marts` schemas whatever the target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
