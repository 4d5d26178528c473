import { Alert, Anchor, Button, Group, Modal, Stack, Text, TextInput, Title } from "@mantine/core";
import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import { keys, useAfterWrite } from "../api/queries";
import { day } from "../components/format";
import { type PageOf, ServerTable } from "../components/ServerTable";
import { CLUSTER_WRITERS, useMe } from "../session";

type Cluster = { id: number; name: string; description: string; latest_version: number | null; created_at: string };

export function ClustersPage() {
  const { slug = "" } = useParams();
  const me = useMe();
  const role = me.data?.organizations.find((o) => o.slug === slug)?.role ?? "";
  const [creating, setCreating] = useState(false);
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Clusters</Title>
        {CLUSTER_WRITERS.includes(role) && <Button onClick={() => setCreating(true)}>New cluster</Button>}
      </Group>
      <ServerTable<Cluster>
        label="Clusters"
        queryKey={keys.clusters(slug)}
        fetchPage={(query) =>
          unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/", { params: { path: { org_slug: slug }, query: query as never } })) as Promise<PageOf<Cluster>>
        }
        rowKey={(cluster) => cluster.id}
        defaultOrdering="id"
        searchPlaceholder="Name or description"
        empty="No clusters yet. A cluster is a group of gateways sharing one configuration."
        columns={[
          {
            key: "name",
            header: "Name",
            sort: "name",
            render: (cluster) => (
              <Anchor component={Link} to={`/orgs/${slug}/clusters/${cluster.id}`}>
                {cluster.name}
              </Anchor>
            ),
          },
          { key: "description", header: "Description", render: (cluster) => cluster.description },
          {
            key: "version",
            header: "Latest version",
            render: (cluster) => (
              <Text size="sm">{cluster.latest_version === null ? "none yet" : `v${cluster.latest_version}`}</Text>
            ),
          },
          { key: "created", header: "Created", sort: "created_at", render: (cluster) => day(cluster.created_at) },
        ]}
      />
      <NewClusterModal slug={slug} opened={creating} onClose={() => setCreating(false)} />
    </Stack>
  );
}

function NewClusterModal({ slug, opened, onClose }: { slug: string; opened: boolean; onClose: () => void }) {
  const afterWrite = useAfterWrite(slug);
  const [name, setName] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const { error: failed } = await api.POST("/api/v1/orgs/{org_slug}/clusters/", {
      params: { path: { org_slug: slug } },
      body: { name } as never,
    });
    if (failed) {
      setErrors(fieldErrors(failed));
      setError(errorMessage(failed));
      return;
    }
    setName("");
    setError(null);
    await afterWrite(keys.clusters(slug));
    onClose();
  };
  return (
    <Modal opened={opened} onClose={onClose} title="New cluster">
      <Stack component="form" onSubmit={submit}>
        {error && <Alert color="red">{error}</Alert>}
        <TextInput label="Name" required data-autofocus value={name} error={errors.name} onChange={(e) => setName(e.currentTarget.value)} />
        <Button type="submit">Create cluster</Button>
      </Stack>
    </Modal>
  );
}
