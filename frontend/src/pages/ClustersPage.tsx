import { Alert, Anchor, Button, Group, Loader, Modal, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import { keys, useAfterWrite } from "../api/queries";
import { CLUSTER_WRITERS, useMe } from "../session";

type Cluster = { id: number; name: string; description: string; latest_version: number | null };

export function ClustersPage() {
  const { slug = "" } = useParams();
  const me = useMe();
  const role = me.data?.organizations.find((o) => o.slug === slug)?.role ?? "";
  const clusters = useQuery({
    queryKey: keys.clusters(slug),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/", { params: { path: { org_slug: slug } } })),
  });
  const [creating, setCreating] = useState(false);
  const results = ((clusters.data as { results?: Cluster[] } | undefined)?.results ?? []) as Cluster[];
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Clusters</Title>
        {CLUSTER_WRITERS.includes(role) && <Button onClick={() => setCreating(true)}>New cluster</Button>}
      </Group>
      {clusters.isLoading && <Loader aria-label="Loading clusters" />}
      {clusters.isError && <Alert color="red">{errorMessage(clusters.error)}</Alert>}
      {clusters.isSuccess && results.length === 0 && (
        <Text c="dimmed">No clusters yet. A cluster is a group of gateways sharing one configuration.</Text>
      )}
      {results.length > 0 && (
        <Table.ScrollContainer minWidth={560}><Table striped highlightOnHover>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Name</Table.Th>
              <Table.Th>Description</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {results.map((cluster) => (
              <Table.Tr key={cluster.id}>
                <Table.Td>
                  <Anchor component={Link} to={`/orgs/${slug}/clusters/${cluster.id}`}>
                    {cluster.name}
                  </Anchor>
                </Table.Td>
                <Table.Td>{cluster.description}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table></Table.ScrollContainer>
      )}
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
