// The user menu in the console's header: who is signed in, and their account page. Loaded after
// the first page draws (App.tsx), like the pages it leads to.
import { ActionIcon, Menu } from "@mantine/core";
import { Link } from "react-router-dom";

export function AccountMenu({ email }: { email: string }) {
  return (
    <Menu position="bottom-end">
      <Menu.Target>
        <ActionIcon variant="default" radius="xl" size="lg" aria-label="Your account">
          {(email || "?").charAt(0).toUpperCase()}
        </ActionIcon>
      </Menu.Target>
      <Menu.Dropdown>
        <Menu.Label>{email}</Menu.Label>
        <Menu.Item component={Link} to="/account">
          Account
        </Menu.Item>
      </Menu.Dropdown>
    </Menu>
  );
}
