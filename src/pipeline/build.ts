import { buildWorkflow, type RenderSettings } from './render.js';
import type { Built, Claimed, Stage } from './stage.js';

/** The Workflow, under the name its claim gave it. */
export function buildStage(settings: RenderSettings): Stage<Claimed, Built> {
  return (draft) => ({
    ...draft,
    workflow: buildWorkflow(
      draft.alert,
      draft.rule,
      draft,
      settings,
      draft.cooldownKey,
      draft.workflowName,
      draft.attempt,
    ),
  });
}
