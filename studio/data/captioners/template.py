"""The DreamBooth template captioner: the same sentence for every image ("a photo of sks dog").

Instance images get `instance_template`; class (prior-preservation) images get `class_template`, which must
not name the trigger, so the class keeps meaning the plain class.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from studio.data.captioners.base import Captioner


class TemplateCaptioner(Captioner):
    name = "template"

    def __init__(
        self,
        trigger: str = "",
        class_word: str = "",
        instance_template: str = "a photo of {trigger} {class}",
        class_template: str = "a photo of {class}",
        role: str = "instance",
    ) -> None:
        for template in (instance_template, class_template):
            try:
                template.format_map({"trigger": "", "class": ""})
            except (KeyError, IndexError, ValueError) as error:
                raise ValueError(f"template {template!r} may use only {{trigger}} and {{class}} ({error})") from error
        if "{trigger}" in instance_template and not trigger:
            raise ValueError("the instance template names {trigger}: give a trigger word")
        if "{class}" in instance_template + class_template and not class_word:
            raise ValueError("the template names {class}: give a class word, e.g. 'dog'")
        self.trigger, self.class_word = trigger, class_word
        self.instance_template, self.class_template = instance_template, class_template
        self.role = role

    def for_role(self, role: str) -> TemplateCaptioner:
        return TemplateCaptioner(self.trigger, self.class_word, self.instance_template, self.class_template, role)

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        template = self.class_template if self.role == "class" else self.instance_template
        text = " ".join(template.format_map({"trigger": self.trigger, "class": self.class_word}).split())
        return [text] * len(images)
