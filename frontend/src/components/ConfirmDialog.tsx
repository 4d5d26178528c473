// The one confirmation every action that cannot be taken back lightly asks for: what will happen,
// Cancel (focused, so Enter does no harm), and the button that does it (red when it destroys).
// An error the action answered shows above.
import { Alert, Button, Group, Modal, Stack } from "@mantine/core";
import type { ReactNode } from "react";

export function ConfirmDialog(props: {
  opened: boolean;
  title: string;
  /** The button that does it: "Delete", "Revoke", "Roll back", "Upgrade". */
  confirmLabel: string;
  /** Red unless the action destroys nothing (a plan upgrade, say). */
  destructive?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
  /** What will happen, and any choice that goes with it. */
  children: ReactNode;
  error?: string | null;
  working?: boolean;
}) {
  return (
    <Modal opened={props.opened} onClose={props.onCancel} title={props.title}>
      <Stack>
        {props.error && <Alert color="red">{props.error}</Alert>}
        {props.children}
        <Group justify="end">
          <Button variant="default" data-autofocus onClick={props.onCancel}>
            Cancel
          </Button>
          <Button color={props.destructive === false ? undefined : "red"} loading={props.working} onClick={props.onConfirm}>
            {props.confirmLabel}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
