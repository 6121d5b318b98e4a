"""Stand-in for saigen.llm.prompts: renders a recognisable prompt per template name."""


class _Template:
    def __init__(self, name):
        self.name = name

    def render(self, context):
        return f"[host-template:{self.name}] saidata for {context.software_name}"


class PromptManager:
    def get_template(self, name):
        if name not in ("generation", "update", "retry"):
            raise ValueError(name)
        return _Template(name)
